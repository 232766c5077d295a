//! Types that cross the IPC boundary to the front end (serde, camelCase).
//!
//! The response shapes mirror the `.proto` messages field for field, so that the TypeScript types
//! generated from the same `.proto` (ts-proto, `onlyTypes`) describe exactly this JSON.

use serde::{Deserialize, Serialize};

use crate::error::ErrorInfo;
use crate::proto;

/// The answer to [`ping`](crate::Anysync::ping): the echo and when the backend handled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingResponse {
    /// The request's message, unchanged.
    pub message: String,
    /// When the backend handled the request, microseconds since the Unix epoch.
    pub handled_at_unix_micros: i64,
}

impl From<proto::PingResponse> for PingResponse {
    fn from(response: proto::PingResponse) -> Self {
        Self {
            message: response.message,
            handled_at_unix_micros: response.handled_at_unix_micros,
        }
    }
}

/// Whether the backend accepts new work, by the `.proto` enum's value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ServingStatus {
    /// The backend did not say; treat as not serving.
    #[serde(rename = "SERVING_STATUS_UNSPECIFIED")]
    Unspecified,
    /// The backend accepts and handles requests.
    #[serde(rename = "SERVING_STATUS_SERVING")]
    Serving,
    /// The backend is shutting down or not ready.
    #[serde(rename = "SERVING_STATUS_NOT_SERVING")]
    NotServing,
}

impl From<proto::health_check_response::ServingStatus> for ServingStatus {
    fn from(status: proto::health_check_response::ServingStatus) -> Self {
        use proto::health_check_response::ServingStatus as S;
        match status {
            S::Unspecified => Self::Unspecified,
            S::Serving => Self::Serving,
            S::NotServing => Self::NotServing,
        }
    }
}

/// The answer to [`health`](crate::Anysync::health): the backend's identity and serving status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResponse {
    /// Whether the backend serves requests right now.
    pub status: ServingStatus,
    /// The backend's semantic version.
    pub version: String,
    /// The launch-protocol version the backend speaks.
    pub protocol_version: u32,
    /// Milliseconds since the backend started serving.
    pub uptime_ms: i64,
    /// The backend's process id.
    pub pid: i32,
}

impl From<proto::HealthCheckResponse> for HealthCheckResponse {
    fn from(response: proto::HealthCheckResponse) -> Self {
        Self {
            status: response.status().into(),
            version: response.version,
            protocol_version: response.protocol_version,
            uptime_ms: response.uptime_ms,
            pid: response.pid,
        }
    }
}

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

/// A snapshot of the supervised backend, sent with every `anysync://status` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
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

/// One line the backend wrote to stderr, parsed; sent with every `anysync://log` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// Increases by one per record for the plugin's lifetime, so a reader can merge `logs()` with
    /// `anysync://log` events without duplicates.
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
