//! One sidecar incarnation: spawn it, bootstrap it, read its handshake, connect, forward its output,
//! and stop it. The supervisor decides *when*; this module knows *how*.

mod logs;
mod process;
pub(crate) mod protocol;

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

pub(crate) use logs::{contained, LogBook};
pub use logs::{parse_log_line, LOG_TARGET};
pub(crate) use process::child_running;
pub use protocol::{parse_handshake, Handshake, Token, PROTOCOL_VERSION};

use crate::client::{Client, Liveness};
use crate::config::SupervisorConfig;
use crate::error::{Error, Result};
use crate::models::{LogLevel, LogRecord};
use crate::proto::health_check_response::ServingStatus;
use crate::proto::HealthCheckResponse;

/// Lines of stderr quoted in a start-up error.
const STDERR_TAIL_LINES: usize = 5;

/// A running, connected sidecar. Dropping it kills the process (`kill_on_drop`); [`Self::stop`] is
/// the graceful way.
pub(crate) struct Incarnation {
    child: Child,
    /// The lifeline: the sidecar exits when this closes.
    stdin: Option<ChildStdin>,
    pub(crate) pid: u32,
    pub(crate) handshake: Handshake,
    pub(crate) client: Client,
    /// Ended the moment the process is known to be gone, so nothing dials its port again.
    liveness: Liveness,
    output: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incarnation")
            .field("pid", &self.pid)
            .field("handshake", &self.handshake)
            .finish()
    }
}

/// Starts a sidecar and returns it connected and answering health checks (SERVING), or the reason
/// it is not. `token` is this incarnation's own secret. The whole start, from spawn to a connected
/// client that passed its first health check, is bounded by `handshakeTimeoutMs`. On any failure
/// the process is killed and reaped before this returns.
pub(crate) async fn launch(
    config: &SupervisorConfig,
    token: Token,
    logs: &Arc<LogBook>,
) -> Result<Incarnation> {
    let deadline = tokio::time::Instant::now() + config.handshake_timeout;
    let timed_out = |stderr_tail| Error::HandshakeTimeout {
        timeout: config.handshake_timeout,
        stderr_tail,
    };
    let path = &config.sidecar_path;
    let mut command = tokio::process::Command::new(path);
    command
        .args(&config.args)
        // The backend's own grace, below the plugin's kill timeout, so that a stop ends with the
        // backend's clean exit, not SIGKILL. `env` (and `args`) may still set it explicitly.
        .env(
            "ANYSYNC_SHUTDOWN_GRACE",
            go_duration(shutdown_grace(config.shutdown_timeout)),
        )
        .envs(config.data_dir.iter().map(|dir| ("ANYSYNC_DATA_DIR", dir)))
        .envs(&config.env)
        .env("ANYSYNC_LOG_LEVEL", config.log_level.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => Error::SidecarNotFound { path: path.clone() },
        _ => Error::SpawnFailed {
            path: path.clone(),
            source,
        },
    };
    process::preflight(path).map_err(spawn_error)?;
    let mut child = match tokio::time::timeout_at(deadline, process::spawn_guarded(command)).await {
        Ok(spawned) => spawned.map_err(spawn_error)?,
        Err(_) => return Err(timed_out(Vec::new())),
    };
    let pid = child.id().unwrap_or_default();
    contained(|| log::debug!("sidecar {} spawned as pid {pid}", path.display()));
    let liveness = Liveness::new(pid);

    let stderr = child
        .stderr
        .take()
        .map(|stderr| forward_stderr(stderr, pid, Arc::clone(logs)));
    let mut output: Vec<JoinHandle<()>> = stderr.into_iter().collect();
    match handshake(&mut child, &token, deadline).await {
        Ok((stdin, handshake, stdout)) => {
            output.push(forward_stray_stdout(stdout, pid, Arc::clone(logs)));
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let connected = async {
                let client =
                    Client::connect(handshake.addr, &token, left, liveness.clone()).await?;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let health = client.check(left.max(Duration::from_millis(1))).await?;
                serving(&health)?;
                Ok::<_, Error>(client)
            };
            let outcome = match tokio::time::timeout_at(deadline, connected).await {
                // The health check's own deadline is what was left of the start's.
                Ok(Err(Error::DeadlineExceeded { .. })) | Err(_) => {
                    Err(timed_out(logs.tail_of(pid, STDERR_TAIL_LINES)))
                }
                Ok(outcome) => outcome,
            };
            match outcome {
                Ok(client) => Ok(Incarnation {
                    child,
                    stdin: Some(stdin),
                    pid,
                    handshake,
                    client,
                    liveness,
                    output,
                }),
                Err(err) => {
                    liveness.end();
                    let _ = child.kill().await;
                    Err(err)
                }
            }
        }
        Err(err) => {
            liveness.end();
            // Let the stderr reader drain what the dying process said, to quote it in the error.
            let status = reap(&mut child).await;
            drain_output(output, pid).await;
            let stderr_tail = logs.tail_of(pid, STDERR_TAIL_LINES);
            Err(match err {
                HandshakeFailure::Exited => Error::SidecarExited {
                    status: describe(status),
                    was_running: false,
                    stderr_tail,
                },
                HandshakeFailure::TimedOut => timed_out(stderr_tail),
                HandshakeFailure::Other(err) => err,
            })
        }
    }
}

/// A health answer other than SERVING (NOT_SERVING: the backend is stopping) is a failed check.
pub(crate) fn serving(health: &HealthCheckResponse) -> Result<()> {
    match health.status() {
        ServingStatus::Serving => Ok(()),
        other => Err(Error::Unavailable {
            reason: format!(
                "the backend reports {} (it is stopping or not ready)",
                other.as_str_name()
            ),
        }),
    }
}

/// The grace the backend gets for its own graceful stop: the plugin's kill timeout less a margin
/// for what follows the grace (closing connections and services, exiting).
pub(crate) fn shutdown_grace(kill_after: Duration) -> Duration {
    let margin = (kill_after / 4).max((kill_after / 2).min(Duration::from_millis(500)));
    kill_after.saturating_sub(margin)
}

/// `1500ms`, as Go's `time.ParseDuration` reads it.
fn go_duration(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

enum HandshakeFailure {
    Exited,
    TimedOut,
    Other(Error),
}

type Stdout = BufReader<tokio::process::ChildStdout>;

/// Writes the bootstrap line and reads the handshake, both under the handshake deadline.
async fn handshake(
    child: &mut Child,
    token: &Token,
    deadline: tokio::time::Instant,
) -> std::result::Result<(ChildStdin, Handshake, Stdout), HandshakeFailure> {
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(HandshakeFailure::Other(Error::Io(std::io::Error::other(
            "sidecar pipes were not created",
        ))));
    };
    let mut stdout = BufReader::new(stdout);
    let exchange = async {
        // A sidecar that exits at once closes stdin before we write: that is an exit, not an I/O error.
        if stdin
            .write_all(protocol::bootstrap_line(token).as_bytes())
            .await
            .is_err()
            || stdin.flush().await.is_err()
        {
            return Err(HandshakeFailure::Exited);
        }
        match logs::read_bounded_line(&mut stdout, protocol::MAX_HANDSHAKE_LINE).await {
            Ok(Some(line)) => protocol::parse_handshake(&line).map_err(HandshakeFailure::Other),
            Ok(None) | Err(_) => Err(HandshakeFailure::Exited),
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(handshake)) => Ok((stdin, handshake, stdout)),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(HandshakeFailure::TimedOut),
    }
}

fn forward_stderr(
    stderr: tokio::process::ChildStderr,
    pid: u32,
    logs: Arc<LogBook>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr);
        // Records dropped from the front end's stream (rate limit) are reported within a second.
        let mut flush = tokio::time::interval(Duration::from_secs(1));
        loop {
            let line = {
                // Kept across ticks, never cancelled: a line half read is not lost.
                let read = logs::read_bounded_line(&mut reader, logs::MAX_LOG_LINE);
                tokio::pin!(read);
                loop {
                    tokio::select! {
                        line = &mut read => break line,
                        _ = flush.tick() => logs.flush_dropped(),
                    }
                }
            };
            match line {
                Ok(Some(line)) => logs.record_line(&line, Some(pid)),
                Ok(None) | Err(_) => break,
            }
        }
        logs.flush_dropped();
    })
}

/// Stdout is reserved for the handshake. Anything after it is a bug in the backend: keep draining so
/// the sidecar never blocks on a full pipe, and surface each line as a warning.
fn forward_stray_stdout(mut stdout: Stdout, pid: u32, logs: Arc<LogBook>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(Some(line)) = logs::read_bounded_line(&mut stdout, logs::MAX_LOG_LINE).await {
            let mut fields = serde_json::Map::new();
            fields.insert("stream".into(), "stdout".into());
            logs.record(LogRecord {
                seq: logs.next_seq(),
                time: None,
                level: LogLevel::Warn,
                message: format!(
                    "unexpected output on stdout (reserved for the handshake): {line}"
                ),
                fields,
                pid: Some(pid),
            });
        }
    })
}

/// Waits for the process to exit, killing it if it has not exited within a moment.
async fn reap(child: &mut Child) -> Option<ExitStatus> {
    match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
}

/// `exit status: 2` or `killed by signal 9`.
pub(crate) fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "exit status unknown".into();
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

impl Incarnation {
    /// Resolves when the process exits, with how it exited. Cancel-safe.
    pub(crate) async fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.wait().await.ok();
        self.liveness.end();
        status
    }

    /// Stops the sidecar: closes its stdin, asks it to stop, and kills it if it has not exited within
    /// `timeout`. Always reaps. Returns how it exited.
    pub(crate) async fn stop(mut self, timeout: Duration) -> Option<ExitStatus> {
        self.liveness.end();
        drop(self.stdin.take());
        process::request_graceful_stop(self.pid);
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                contained(|| {
                    log::warn!(
                        "sidecar pid {} did not stop within {}ms; killing it",
                        self.pid,
                        timeout.as_millis()
                    );
                });
                self.kill().await
            }
        };
        self.finish_output().await;
        status
    }

    /// Kills the sidecar at once and reaps it.
    pub(crate) async fn kill(&mut self) -> Option<ExitStatus> {
        self.liveness.end();
        drop(self.stdin.take());
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }

    /// Lets the output readers record the last lines of a process that has exited.
    pub(crate) async fn finish_output(&mut self) {
        drain_output(self.output.drain(..), self.pid).await;
    }
}

/// Waits, briefly, for the output readers of an exited process to record its last lines. A reader
/// still open after the bound (a grandchild holding the pipe) is left to finish on its own.
async fn drain_output(tasks: impl IntoIterator<Item = JoinHandle<()>>, pid: u32) {
    for task in tasks {
        if tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .is_err()
        {
            contained(|| log::debug!("sidecar pid {pid} left its output open after exit"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backends_grace_ends_before_the_kill() {
        for (kill_ms, grace_ms) in [(3_000, 2_250), (2_000, 1_500), (800, 400), (10, 5)] {
            let grace = shutdown_grace(Duration::from_millis(kill_ms));
            assert_eq!(grace, Duration::from_millis(grace_ms), "{kill_ms}");
        }
        assert_eq!(go_duration(Duration::from_millis(1_500)), "1500ms");
    }
}
