//! The lifecycle state machine: one task owns the sidecar and moves it through
//! `Starting -> Running -> Unhealthy -> Restarting -> Running | Failed`, and
//! `Running -> Stopping -> Stopped`. Callers see it through a `watch` of the latest snapshot and
//! talk to it through a command channel; nothing else touches the process.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use std::future::Future;

use crate::calls::{Control, Registration};
use crate::client::{Client, Failure};
use crate::config::SupervisorConfig;
use crate::error::{Error, ErrorInfo, Result};
use crate::method::Method;
use crate::models::{LogRecord, State, Status};
use crate::proto::{HealthCheckResponse, PingResponse};
use crate::sidecar::{self, contained, Incarnation, LogBook, Token};
use crate::stream::{check_credit, FrameSink, Pump, StreamHandle, StreamOptions};
use crate::transport::BackendChannel;

/// Where the supervisor reports what happens: state changes and backend log records.
///
/// The plugin forwards both to the front end's subscriptions (`subscribe_status`, `subscribe_logs`)
/// and as `anysync://status` and `anysync://log` events; tests
/// and headless hosts may record them. Called from the supervisor's task: keep it quick. A panic in
/// it is contained (the event is lost, the supervisor carries on).
pub trait EventSink: Send + Sync + 'static {
    /// The supervisor entered a new state, or the status changed within one.
    fn status(&self, _status: &Status) {}
    /// The backend wrote a log record.
    fn log(&self, _record: &LogRecord) {}
}

/// Discards every event.
impl EventSink for () {}

enum Command {
    Restart(oneshot::Sender<Result<Status>>),
    Shutdown(oneshot::Sender<Option<ExitStatus>>),
}

#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) status: Status,
    /// The live incarnation's client; `Some` exactly while `Running`.
    pub(crate) client: Option<Client>,
}

/// What callers watch: the latest snapshot.
pub(crate) type Snapshots = watch::Receiver<Snapshot>;

/// Supervises one Go backend: starts it, watches it, restarts it, stops it.
///
/// Cheap to share behind an `Arc`; every method is safe to call from many tasks at once. Dropping
/// the last handle stops the backend (gracefully, in the background); call [`Self::shutdown`] to
/// wait for it.
pub struct Supervisor {
    config: SupervisorConfig,
    /// Where stream tasks run: the runtime the supervisor was started on.
    runtime: tokio::runtime::Handle,
    snapshots: watch::Receiver<Snapshot>,
    commands: mpsc::UnboundedSender<Command>,
    logs: Arc<LogBook>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts supervising on the current tokio runtime. Returns at once; the backend starts in the
    /// background (watch [`Self::status`] or the sink, or just call: calls wait for it).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(config: SupervisorConfig, sink: Arc<dyn EventSink>) -> Self {
        Self::start_on(&tokio::runtime::Handle::current(), config, sink)
    }

    /// Like [`Self::start`], on the given runtime.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        config: SupervisorConfig,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        let logs = Arc::new(LogBook::new(config.log_buffer, Arc::clone(&sink)));
        let status = Status {
            seq: 0,
            state: State::Starting,
            pid: None,
            addr: None,
            version: None,
            restarts: 0,
            last_error: None,
            since_ms: unix_ms(),
            running_since_ms: None,
        };
        let (publisher, snapshots) = watch::channel(Snapshot {
            status,
            client: None,
        });
        let (commands, inbox) = mpsc::unbounded_channel();
        let task = Task {
            config: config.clone(),
            logs: Arc::clone(&logs),
            sink,
            publisher,
            inbox,
            restart_times: VecDeque::new(),
            waiting_restarts: Vec::new(),
            first_token: Some(config.token.clone()),
        };
        runtime.spawn(task.run());
        Self {
            config,
            runtime: runtime.clone(),
            snapshots,
            commands,
            logs,
        }
    }

    /// The latest status.
    pub fn status(&self) -> Status {
        self.snapshots.borrow().status.clone()
    }

    /// The retained backend log records, oldest first.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.logs.recent()
    }

    /// The secret of the running incarnation, `None` while none runs. Each incarnation draws its
    /// own, so a token is worthless once its backend is gone. For in-process code with a gRPC
    /// client of its own; [`Self::channel`] adds it for you.
    pub fn token(&self) -> Option<Token> {
        self.snapshots
            .borrow()
            .client
            .as_ref()
            .map(|client| client.token().clone())
    }

    /// The configuration in force.
    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    /// Echoes `message` through the backend, waiting for a (re)starting backend up to the call deadline.
    pub async fn ping(&self, message: String) -> Result<PingResponse> {
        self.attempt(self.config.call_timeout, |client, left| {
            let message = message.clone();
            async move { client.ping(message, left).await }
        })
        .await
    }

    /// The backend's health and identity, waiting for a (re)starting backend up to the call deadline.
    pub async fn health(&self) -> Result<HealthCheckResponse> {
        self.attempt(self.config.call_timeout, |client, left| async move {
            client.check(left).await
        })
        .await
    }

    /// One unary call of any method: `method` is `package.Service/Method`, `request` the request
    /// message's protobuf bytes; answers the response message's bytes.
    ///
    /// `timeout` bounds the whole call, including waiting for a (re)starting backend; it is capped
    /// by (and defaults to) `callTimeoutMs`. Bytes that are not a valid message are the backend's to
    /// reject (INTERNAL or INVALID_ARGUMENT). Rust code with generated clients may prefer
    /// [`Self::channel`].
    pub async fn call(
        &self,
        method: &str,
        request: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes> {
        let method = Method::parse(method)?;
        self.call_method(&method, request, timeout).await
    }

    pub(crate) async fn call_method(
        &self,
        method: &Method,
        request: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes> {
        self.attempt(self.bounded_timeout(timeout), |client, left| {
            // A clone of `Bytes` shares the buffer.
            let request = request.clone();
            async move { client.unary(method, request, left).await }
        })
        .await
    }

    /// Runs one call on the running incarnation within `timeout`, waiting for it first. A call
    /// that could not even connect (the backend exited before the supervisor noticed) was never
    /// sent, so it waits for the next incarnation and goes there, within the same deadline.
    async fn attempt<T, F, Fut>(&self, timeout: Duration, mut call: F) -> Result<T>
    where
        F: FnMut(Client, Duration) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let client = self.client_before_within(deadline, timeout).await?;
            let incarnation = client.incarnation();
            match call(client, remaining(deadline, timeout)?).await {
                Ok(answer) => return Ok(answer),
                Err(Failure { error, sent: true }) => return Err(error),
                Err(Failure { error, sent: false }) => {
                    log::debug!("anysync: call not sent ({error}); waiting for the next backend");
                    let mut snapshots = self.snapshots();
                    if tokio::time::timeout_at(
                        deadline,
                        incarnation_ended(&mut snapshots, incarnation),
                    )
                    .await
                    .is_err()
                    {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// `timeout` capped by `callTimeoutMs`, which is also the default.
    pub(crate) fn bounded_timeout(&self, timeout: Option<Duration>) -> Duration {
        timeout.map_or(self.config.call_timeout, |t| {
            t.min(self.config.call_timeout)
        })
    }

    /// An authenticated gRPC channel for any tonic-generated client, e.g.
    /// `HealthServiceClient::new(supervisor.channel())`. It always routes to the current
    /// incarnation (a call made while the backend restarts waits for it up to `callTimeoutMs`, then
    /// fails UNAVAILABLE) and adds the bearer token. Cheap to clone.
    pub fn channel(&self) -> BackendChannel {
        BackendChannel::new(self.snapshots.clone(), self.config.call_timeout)
    }

    /// Opens a server-streaming call of any method and forwards it to `sink` as frames
    /// (docs/call-path.md: `[kind u8][len u32 LE][body]`, kind 0 a message, kind 1 the end), taking
    /// messages only while the stream holds credit. This is the path of the front end's `stream`
    /// command; Rust code with generated clients may prefer [`Self::channel`].
    ///
    /// Waits for a (re)starting backend up to `callTimeoutMs`; an error here means nothing was
    /// opened. Afterwards every outcome arrives at the sink as an end frame: OK, the backend's
    /// status, CANCELLED, DEADLINE_EXCEEDED, or UNAVAILABLE when the backend incarnation ends
    /// (crash, restart, shutdown).
    pub async fn open_stream(
        &self,
        method: &str,
        request: Bytes,
        options: StreamOptions,
        sink: Arc<dyn FrameSink>,
    ) -> Result<StreamHandle> {
        let method = Method::parse(method)?;
        let control = Control::new(check_credit(options.credit)?);
        self.start_stream(
            method,
            request,
            options.timeout,
            Arc::clone(&control),
            sink,
            None,
        )
        .await?;
        Ok(StreamHandle::new(control))
    }

    /// Waits for the running backend, claims a stream slot and starts the stream's task.
    pub(crate) async fn start_stream(
        &self,
        method: Method,
        body: Bytes,
        timeout: Option<Duration>,
        control: Arc<Control>,
        sink: Arc<dyn FrameSink>,
        registration: Option<Registration>,
    ) -> Result<()> {
        let wait = self.bounded_timeout(timeout);
        let client = self
            .client_before_within(Instant::now() + wait, wait)
            .await?;
        let slot = client.stream_slot()?;
        log::debug!("anysync: stream {method} opened");
        let pump = Pump {
            client,
            slot,
            snapshots: self.snapshots(),
            method,
            body,
            timeout,
            control,
            sink,
            registration,
        };
        self.runtime.spawn(pump.run());
        Ok(())
    }

    /// The supervisor's snapshots, for the stream path and the channel.
    pub(crate) fn snapshots(&self) -> Snapshots {
        self.snapshots.clone()
    }

    /// Restarts the backend (also out of `Failed`, resetting the restart budget) and resolves with
    /// the status once it is running again, or with the error that kept it from running.
    ///
    /// Bounded by [`Self::restart_bound`] (`shutdownTimeoutMs` for the old backend to stop plus
    /// `handshakeTimeoutMs` for the new one to start): past it, UNAVAILABLE, while the supervisor
    /// keeps trying in the background as after a crash.
    pub async fn restart(&self) -> Result<Status> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Restart(reply))
            .map_err(|_| self.stopped())?;
        let bound = self.restart_bound();
        match tokio::time::timeout(bound, answer).await {
            Ok(answer) => answer.map_err(|_| self.stopped())?,
            Err(_) => {
                let status = self.status();
                let last = status
                    .last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                Err(Error::Unavailable {
                    reason: format!(
                        "the backend is {} and did not run again within {}ms of restart(){last}",
                        status.state,
                        bound.as_millis()
                    ),
                })
            }
        }
    }

    /// How long [`Self::restart`] may take: the old backend's stop, the new one's start, and a
    /// moment to reap a killed process.
    pub fn restart_bound(&self) -> Duration {
        self.config.shutdown_timeout + self.config.handshake_timeout + REAP_SLACK
    }

    /// Stops the backend gracefully (killing it after the shutdown timeout) and waits until it is
    /// reaped; answers how the running backend exited (`None` when none was running). Safe to
    /// call more than once; later calls return `None` at once.
    pub async fn shutdown(&self) -> Option<ExitStatus> {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(ack)).is_ok() {
            done.await.ok().flatten()
        } else {
            None
        }
    }

    fn stopped(&self) -> Error {
        Error::NotRunning {
            state: State::Stopped,
        }
    }

    /// The client of the running backend, waiting while it starts or restarts, until `deadline`
    /// (the end of a call whose own timeout is `timeout`).
    pub(crate) async fn client_before_within(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Client> {
        running_client(self.snapshots.clone(), deadline, timeout).await
    }
}

/// The client of the running backend, waiting while it starts or restarts until `deadline` (the
/// end of a call whose timeout is `timeout`), then UNAVAILABLE.
pub(crate) async fn running_client(
    mut snapshots: Snapshots,
    deadline: Instant,
    timeout: Duration,
) -> Result<Client> {
    let stopped = || Error::NotRunning {
        state: State::Stopped,
    };
    loop {
        {
            let snapshot = snapshots.borrow_and_update();
            let status = &snapshot.status;
            match (status.state, &snapshot.client) {
                // A client whose backend is already known to be gone (its connection broke, or
                // the process exited and the supervisor has not processed it yet) is skipped: the
                // call waits for the next incarnation instead of failing on a dead one.
                (State::Running, Some(client)) if client.alive() => return Ok(client.clone()),
                (State::Failed, _) => return Err(failed_error(status)),
                (State::Stopping | State::Stopped, _) => {
                    return Err(Error::NotRunning {
                        state: status.state,
                    })
                }
                _ => {}
            }
        }
        match tokio::time::timeout_at(deadline, snapshots.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => {
                let status = snapshots.borrow().status.clone();
                let last = status
                    .last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default();
                return Err(Error::Unavailable {
                    reason: format!(
                        "the backend is {} and did not become running within {}ms{last}; the call was not sent",
                        status.state,
                        timeout.as_millis()
                    ),
                });
            }
        }
    }
}

/// Snapshots of a backend that never runs (no supervisor behind them): callers see `status` at once.
#[cfg_attr(not(any(mobile, test)), allow(dead_code))]
pub(crate) fn detached(status: Status) -> Snapshots {
    let (_, snapshots) = watch::channel(Snapshot {
        status,
        client: None,
    });
    snapshots
}

/// Resolves once the incarnation `id` is no longer the running one (it crashed, is restarting or
/// stopping), or the supervisor is gone.
pub(crate) async fn incarnation_ended(snapshots: &mut Snapshots, id: u64) {
    loop {
        let current = snapshots
            .borrow_and_update()
            .client
            .as_ref()
            .map(Client::incarnation);
        if current != Some(id) {
            return;
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

fn failed_error(status: &Status) -> Error {
    let cause = status.last_error.clone().unwrap_or_else(|| ErrorInfo {
        code: "UNKNOWN".into(),
        message: "no error was recorded".into(),
        details: None,
    });
    Error::SidecarFailed {
        restarts: status.restarts,
        cause: Box::new(cause),
    }
}

/// What is left of a call's deadline after waiting for a running backend.
fn remaining(deadline: Instant, call_timeout: Duration) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::DeadlineExceeded {
            timeout: call_timeout,
        });
    }
    Ok(left)
}

/// What reaping a killed sidecar may take, on top of the configured bounds.
const REAP_SLACK: Duration = Duration::from_millis(500);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// What the task does next.
enum Phase {
    Launch(State),
    Running(Incarnation),
    /// The last incarnation failed (or could not start) with this error.
    Crashed(Error),
    Failed,
    Stop(
        Option<Incarnation>,
        Option<oneshot::Sender<Option<ExitStatus>>>,
    ),
}

/// The one task that owns the sidecar.
struct Task {
    config: SupervisorConfig,
    logs: Arc<LogBook>,
    sink: Arc<dyn EventSink>,
    publisher: watch::Sender<Snapshot>,
    inbox: mpsc::UnboundedReceiver<Command>,
    /// When each restart within the window happened, oldest first.
    restart_times: VecDeque<Instant>,
    /// `restart()` callers waiting for the outcome.
    waiting_restarts: Vec<oneshot::Sender<Result<Status>>>,
    /// The first incarnation's token (the one [`SupervisorConfig::token`] shows); every later
    /// incarnation draws its own.
    first_token: Option<Token>,
}

impl Task {
    async fn run(mut self) {
        let mut phase = Phase::Launch(State::Starting);
        loop {
            phase = match phase {
                Phase::Launch(state) => self.launch(state).await,
                Phase::Running(incarnation) => self.watch_running(incarnation).await,
                Phase::Crashed(error) => self.after_crash(error).await,
                Phase::Failed => self.wait_in_failed().await,
                Phase::Stop(incarnation, ack) => {
                    let exit = self.stop(incarnation).await;
                    if let Some(ack) = ack {
                        let _ = ack.send(exit);
                    }
                    self.answer_restarts(Err(Error::NotRunning {
                        state: State::Stopped,
                    }));
                    // Later commands find the channel closed, so `shutdown()` returns at once.
                    return;
                }
            };
        }
    }

    fn status(&self) -> Status {
        self.publisher.borrow().status.clone()
    }

    /// Publishes a change to every waiting caller and the sink. The logger and the sink are the
    /// app's code: a panic in either is contained, so it cannot end this task (and the backend).
    fn publish(&self, client: Option<Client>, update: impl FnOnce(&mut Status)) {
        let mut status = self.status();
        let before = status.state;
        update(&mut status);
        // Every publish is a newer status, so a reader can tell a stale one from a fresh one.
        status.seq += 1;
        if status.state != before {
            status.since_ms = unix_ms();
        }
        // In these states no backend process exists, so nothing about one may linger in the status.
        if matches!(
            status.state,
            State::Starting | State::Restarting | State::Failed | State::Stopped
        ) {
            status.pid = None;
            status.addr = None;
            status.running_since_ms = None;
        }
        contained(|| match status.state {
            State::Failed => {
                log::error!("anysync backend {}: {:?}", status.state, status.last_error)
            }
            State::Running => {
                log::info!(
                    "anysync backend running: pid {:?} at {:?}",
                    status.pid,
                    status.addr
                );
            }
            state => log::info!("anysync backend {state}"),
        });
        contained(|| self.sink.status(&status));
        self.publisher.send_replace(Snapshot { status, client });
    }

    fn answer_restarts(&mut self, outcome: Result<Status>) {
        for waiter in self.waiting_restarts.drain(..) {
            let _ = waiter.send(match &outcome {
                Ok(status) => Ok(status.clone()),
                Err(Error::SidecarFailed { restarts, cause }) => Err(Error::SidecarFailed {
                    restarts: *restarts,
                    cause: cause.clone(),
                }),
                Err(_) => Err(Error::NotRunning {
                    state: State::Stopped,
                }),
            });
        }
    }

    async fn launch(&mut self, state: State) -> Phase {
        // A crash or restart() already published Restarting: one status per state change. The
        // first Starting is published all the same (seq 0: nothing was published yet).
        let current = self.status();
        if current.state != state || current.seq == 0 {
            self.publish(None, |s| {
                s.state = state;
            });
        }
        let token = match self.first_token.take() {
            Some(token) => token,
            None => match Token::generate() {
                Ok(token) => token,
                Err(error) => return Phase::Crashed(error),
            },
        };
        let launch = sidecar::launch(&self.config, token, &self.logs);
        tokio::pin!(launch);
        loop {
            tokio::select! {
                outcome = &mut launch => {
                    return match outcome {
                        Ok(incarnation) => Phase::Running(incarnation),
                        Err(error) => Phase::Crashed(error),
                    };
                }
                command = self.inbox.recv() => match command {
                    // Already (re)starting: the caller hears when this launch ends.
                    Some(Command::Restart(reply)) => self.waiting_restarts.push(reply),
                    // Dropping the launch kills and reaps a half-started sidecar (kill_on_drop).
                    Some(Command::Shutdown(ack)) => return Phase::Stop(None, Some(ack)),
                    None => return Phase::Stop(None, None),
                }
            }
        }
    }

    async fn watch_running(&mut self, mut incarnation: Incarnation) -> Phase {
        let handshake = incarnation.handshake.clone();
        let client = incarnation.client.clone();
        self.publish(Some(client.clone()), |s| {
            s.state = State::Running;
            s.pid = Some(incarnation.pid);
            s.addr = Some(handshake.addr.to_string());
            s.version = Some(handshake.version.clone());
            s.running_since_ms = Some(unix_ms());
        });
        let status = self.status();
        self.answer_restarts(Ok(status));

        let mut misses = 0;
        let probe = probe_after(
            client.clone(),
            self.config.health_check_interval,
            self.config.health_check_timeout,
        );
        tokio::pin!(probe);
        loop {
            tokio::select! {
                exit = incarnation.exited() => {
                    // The old client goes first, before anything can take it for a call (the
                    // status follows once the exit is understood).
                    self.publisher.send_modify(|snapshot| snapshot.client = None);
                    incarnation.finish_output().await;
                    let stderr_tail = self.logs.tail_of(incarnation.pid, 5);
                    return Phase::Crashed(Error::SidecarExited {
                        status: sidecar::describe(exit),
                        was_running: true,
                        stderr_tail,
                    });
                }
                outcome = &mut probe => {
                    match outcome {
                        Ok(()) => misses = 0,
                        Err(error) => {
                            misses += 1;
                            contained(|| {
                                log::warn!(
                                    "anysync backend health check {misses}/{} failed: {error}",
                                    self.config.unhealthy_threshold
                                );
                            });
                            if misses >= self.config.unhealthy_threshold {
                                let info = error.info();
                                self.publish(None, |s| {
                                    s.state = State::Unhealthy;
                                    s.last_error = Some(info);
                                });
                                let _ = incarnation.kill().await;
                                incarnation.finish_output().await;
                                return Phase::Crashed(error);
                            }
                        }
                    }
                    probe.set(probe_after(client.clone(), self.config.health_check_interval, self.config.health_check_timeout));
                }
                command = self.inbox.recv() => match command {
                    Some(Command::Restart(reply)) => {
                        self.waiting_restarts.push(reply);
                        // Restarting, not Stopping: calls made while the old incarnation drains
                        // wait for the new one within their own deadline instead of failing.
                        self.restart_times.clear();
                        self.publish(None, |s| {
                            s.state = State::Restarting;
                            s.restarts += 1;
                        });
                        incarnation.stop(self.config.shutdown_timeout).await;
                        return Phase::Launch(State::Restarting);
                    }
                    Some(Command::Shutdown(ack)) => return Phase::Stop(Some(incarnation), Some(ack)),
                    None => return Phase::Stop(Some(incarnation), None),
                }
            }
        }
    }

    /// Decides between another start (after a backoff) and giving up.
    async fn after_crash(&mut self, error: Error) -> Phase {
        contained(|| log::warn!("anysync backend failed: {error}"));
        let info = error.info();
        if error.is_permanent() {
            self.publish(None, |s| s.last_error = Some(info));
            return Phase::Failed;
        }
        let now = Instant::now();
        while self
            .restart_times
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.restart_window)
        {
            self.restart_times.pop_front();
        }
        if self.restart_times.len() >= self.config.max_restarts as usize {
            self.publish(None, |s| s.last_error = Some(info));
            return Phase::Failed;
        }
        let delay = self.backoff(self.restart_times.len());
        self.restart_times.push_back(now);
        self.publish(None, |s| {
            s.state = State::Restarting;
            s.restarts += 1;
            s.last_error = Some(info);
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => Phase::Launch(State::Restarting),
            command = self.inbox.recv() => match command {
                Some(Command::Restart(reply)) => {
                    self.waiting_restarts.push(reply);
                    Phase::Launch(State::Restarting)
                }
                Some(Command::Shutdown(ack)) => Phase::Stop(None, Some(ack)),
                None => Phase::Stop(None, None),
            }
        }
    }

    /// The delay before the restart that follows `recent` restarts in the window: the first is
    /// immediate, then `initial * 2^(n-1)` capped at the maximum, with ±20% jitter so that many
    /// apps restarting together do not stay in step.
    fn backoff(&self, recent: usize) -> Duration {
        if recent == 0 {
            return Duration::ZERO;
        }
        let exponent = u32::try_from(recent - 1).unwrap_or(u32::MAX).min(20);
        let base = self
            .config
            .backoff_initial
            .saturating_mul(1 << exponent)
            .min(self.config.backoff_max);
        base.mul_f64(fastrand::f64().mul_add(0.4, 0.8))
    }

    async fn wait_in_failed(&mut self) -> Phase {
        self.publish(None, |s| {
            s.state = State::Failed;
        });
        let status = self.status();
        self.answer_restarts(Err(failed_error(&status)));
        match self.inbox.recv().await {
            Some(Command::Restart(reply)) => {
                self.waiting_restarts.push(reply);
                self.restart_times.clear();
                self.publish(None, |s| s.restarts += 1);
                Phase::Launch(State::Restarting)
            }
            Some(Command::Shutdown(ack)) => Phase::Stop(None, Some(ack)),
            None => Phase::Stop(None, None),
        }
    }

    async fn stop(&mut self, incarnation: Option<Incarnation>) -> Option<ExitStatus> {
        self.publish(None, |s| s.state = State::Stopping);
        let mut exit = None;
        if let Some(incarnation) = incarnation {
            let pid = incarnation.pid;
            exit = incarnation.stop(self.config.shutdown_timeout).await;
            contained(|| {
                log::info!(
                    "anysync backend pid {pid} stopped ({})",
                    sidecar::describe(exit)
                );
            });
        }
        self.publish(None, |s| {
            s.state = State::Stopped;
        });
        exit
    }
}

async fn probe_after(client: Client, interval: Duration, timeout: Duration) -> Result<()> {
    tokio::time::sleep(interval).await;
    let health = client.check(timeout).await.map_err(Error::from)?;
    // A backend that reports NOT_SERVING is stopping: for the supervisor it is not healthy.
    sidecar::serving(&health)
}
