//! Plugin types that cross the IPC boundary to the front end (serde, camelCase): the supervisor's
//! status and the backend's log records. The backend's own messages are not here: the generated
//! protobuf types (crate::proto) cross as they are.

use serde::{Deserialize, Serialize};

use crate::error::ErrorInfo;

/// The supervisor's lifecycle state.
///
/// `starting -> running -> unhealthy -> restarting -> running | failed`, and
/// `running -> stopping -> stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// The first launch is under way.
    Starting,
    /// The backend is connected and answering.
    Running,
    /// Health checks failed; the backend is about to be restarted.
    Unhealthy,
    /// The backend died or was unhealthy and is being started again.
    Restarting,
    /// Too many failures (or a failure restarting cannot fix); waiting for `restart()`.
    Failed,
    /// The backend is being shut down.
    Stopping,
    /// The backend is shut down.
    Stopped,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Unhealthy => "unhealthy",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        };
        f.write_str(name)
    }
}

/// A snapshot of the supervised backend: what `status()` answers, the first message and every
/// later one of a `subscribe_status` channel, and the payload of every `anysync://status` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Grows with every status the supervisor publishes (0 before the first), so a reader keeps
    /// the status with the highest `seq` and a stale one can never overwrite a fresher one.
    pub seq: u64,
    /// The lifecycle state.
    pub state: State,
    /// The backend's process id, while a process exists.
    pub pid: Option<u32>,
    /// The backend's loopback address (`127.0.0.1:PORT`), while running.
    pub addr: Option<String>,
    /// The backend's version from its handshake, once known.
    pub version: Option<String>,
    /// How many times the backend was restarted since the plugin started.
    pub restarts: u32,
    /// The last failure, kept until the next one (not cleared by recovery).
    pub last_error: Option<ErrorInfo>,
    /// When this state was entered, milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// When the current backend process became ready, milliseconds since the Unix epoch.
    pub running_since_ms: Option<u64>,
}

/// Severity of a backend log record, as `log/slog` names it (lower-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    /// Fine-grained diagnostics, e.g. one record per call.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the backend survived.
    Warn,
    /// A failure.
    Error,
}

impl From<LogLevel> for log::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Debug => Self::Debug,
            LogLevel::Info => Self::Info,
            LogLevel::Warn => Self::Warn,
            LogLevel::Error => Self::Error,
        }
    }
}

/// One line the backend wrote to stderr, parsed; sent on every `subscribe_logs` channel and with
/// every `anysync://log` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// Increases by one per record for the plugin's lifetime, so a reader can merge `logs()` with
    /// the subscription (or the `anysync://log` events) without duplicates.
    pub seq: u64,
    /// The backend's timestamp (RFC 3339) if it gave one.
    pub time: Option<String>,
    /// Severity; lines that are not JSON are `info` (or `error` when the backend is dying).
    pub level: LogLevel,
    /// The message (`msg`), or the whole line when it is not JSON.
    pub message: String,
    /// Every other attribute of the record.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The backend process that wrote it.
    pub pid: Option<u32>,
}
