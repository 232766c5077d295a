//! The lifecycle state machine: one task owns the sidecar and moves it through
//! `Starting -> Running -> Unhealthy -> Restarting -> Running | Failed`, and
//! `Running -> Stopping -> Stopped`. Callers see it through a `watch` of the latest snapshot and
//! talk to it through a command channel; nothing else touches the process.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::client::Client;
use crate::config::SupervisorConfig;
use crate::error::{Error, ErrorInfo, Result};
use crate::models::{HealthCheckResponse, LogRecord, PingResponse, State, Status};
use crate::sidecar::{self, contained, Incarnation, LogBook};

/// Where the supervisor reports what happens: state changes and backend log records.
///
/// The plugin forwards both to the front end as `anysync://status` and `anysync://log` events; tests
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
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
struct Snapshot {
    status: Status,
    /// The live incarnation's client; `Some` exactly while `Running`.
    client: Option<Client>,
}

/// Supervises one Go backend: starts it, watches it, restarts it, stops it.
///
/// Cheap to share behind an `Arc`; every method is safe to call from many tasks at once. Dropping
/// the last handle stops the backend (gracefully, in the background); call [`Self::shutdown`] to
/// wait for it.
pub struct Supervisor {
    config: SupervisorConfig,
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
        };
        runtime.spawn(task.run());
        Self {
            config,
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

    /// The configuration in force.
    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    /// Echoes `message` through the backend, waiting for a (re)starting backend up to the call deadline.
    pub async fn ping(&self, message: String) -> Result<PingResponse> {
        let deadline = Instant::now() + self.config.call_timeout;
        let client = self.client_before(deadline).await?;
        client
            .ping(message, remaining(deadline, self.config.call_timeout)?)
            .await
    }

    /// The backend's health and identity, waiting for a (re)starting backend up to the call deadline.
    pub async fn health(&self) -> Result<HealthCheckResponse> {
        let deadline = Instant::now() + self.config.call_timeout;
        let client = self.client_before(deadline).await?;
        client
            .check(remaining(deadline, self.config.call_timeout)?)
            .await
    }

    /// Restarts the backend (also out of `Failed`, resetting the restart budget) and resolves with
    /// the status once it is running again, or with the error that kept it from running.
    pub async fn restart(&self) -> Result<Status> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Restart(reply))
            .map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// Stops the backend gracefully (killing it after the shutdown timeout) and waits until it is
    /// reaped. Safe to call more than once; later calls return at once.
    pub async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(ack)).is_ok() {
            let _ = done.await;
        }
    }

    fn stopped(&self) -> Error {
        Error::NotRunning {
            state: State::Stopped,
        }
    }

    /// The client of the running backend, waiting while it starts or restarts.
    async fn client_before(&self, deadline: Instant) -> Result<Client> {
        let mut snapshots = self.snapshots.clone();
        loop {
            {
                let snapshot = snapshots.borrow_and_update();
                let status = &snapshot.status;
                match (status.state, &snapshot.client) {
                    (State::Running, Some(client)) => return Ok(client.clone()),
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
                Ok(Err(_)) => return Err(self.stopped()),
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
                            self.config.call_timeout.as_millis()
                        ),
                    });
                }
            }
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
    Stop(Option<Incarnation>, Option<oneshot::Sender<()>>),
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
                    self.stop(incarnation).await;
                    if let Some(ack) = ack {
                        let _ = ack.send(());
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
        self.publish(None, |s| {
            s.state = state;
        });
        let launch = sidecar::launch(&self.config, &self.logs);
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
                        self.publish(None, |s| s.state = State::Stopping);
                        incarnation.stop(self.config.shutdown_timeout).await;
                        self.restart_times.clear();
                        self.publish(None, |s| s.restarts += 1);
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

    async fn stop(&mut self, incarnation: Option<Incarnation>) {
        self.publish(None, |s| s.state = State::Stopping);
        if let Some(incarnation) = incarnation {
            let pid = incarnation.pid;
            let exit = incarnation.stop(self.config.shutdown_timeout).await;
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
    }
}

async fn probe_after(client: Client, interval: Duration, timeout: Duration) -> Result<()> {
    tokio::time::sleep(interval).await;
    client.check(timeout).await.map(drop)
}
