//! One error model from Go to TypeScript.
//!
//! The Go backend answers with gRPC status codes; [`Error::Backend`] keeps that code. Everything the
//! plugin itself can get wrong (finding, spawning, handshaking with and supervising the sidecar) has
//! its own variant. Both serialize to the front end as `{ code, message, details? }`, where `code` is
//! the gRPC code name (`"UNAVAILABLE"`) or the plugin's own (`"SIDECAR_NOT_FOUND"`), so the TypeScript
//! API can branch on it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::models::State;

/// A `Result` whose error is this plugin's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The gRPC status codes, by their canonical names.
///
/// Kept as our own type so the plugin's public API does not change with the gRPC library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum GrpcCode {
    /// Not an error.
    Ok,
    /// The operation was cancelled, typically by the caller.
    Cancelled,
    /// An error the backend could not classify.
    Unknown,
    /// The caller sent an invalid argument.
    InvalidArgument,
    /// The deadline passed before the operation completed.
    DeadlineExceeded,
    /// A requested entity was not found.
    NotFound,
    /// The entity the caller tried to create already exists.
    AlreadyExists,
    /// The caller may not execute this operation.
    PermissionDenied,
    /// A resource (quota, message size, memory) is exhausted.
    ResourceExhausted,
    /// The system is not in a state required for the operation.
    FailedPrecondition,
    /// The operation was aborted, typically by a concurrency conflict.
    Aborted,
    /// The operation was attempted past the valid range.
    OutOfRange,
    /// The operation is not implemented by this backend.
    Unimplemented,
    /// An internal invariant of the backend broke.
    Internal,
    /// The backend is unreachable right now; retrying may succeed.
    Unavailable,
    /// Unrecoverable data loss or corruption.
    DataLoss,
    /// The request lacks valid authentication credentials.
    Unauthenticated,
}

impl GrpcCode {
    /// The canonical name, e.g. `"UNAVAILABLE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl From<tonic::Code> for GrpcCode {
    fn from(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::Ok => Self::Ok,
            C::Cancelled => Self::Cancelled,
            C::Unknown => Self::Unknown,
            C::InvalidArgument => Self::InvalidArgument,
            C::DeadlineExceeded => Self::DeadlineExceeded,
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::PermissionDenied => Self::PermissionDenied,
            C::ResourceExhausted => Self::ResourceExhausted,
            C::FailedPrecondition => Self::FailedPrecondition,
            C::Aborted => Self::Aborted,
            C::OutOfRange => Self::OutOfRange,
            C::Unimplemented => Self::Unimplemented,
            C::Internal => Self::Internal,
            C::Unavailable => Self::Unavailable,
            C::DataLoss => Self::DataLoss,
            C::Unauthenticated => Self::Unauthenticated,
        }
    }
}

impl From<GrpcCode> for tonic::Code {
    fn from(code: GrpcCode) -> Self {
        use GrpcCode as G;
        match code {
            G::Ok => Self::Ok,
            G::Cancelled => Self::Cancelled,
            G::Unknown => Self::Unknown,
            G::InvalidArgument => Self::InvalidArgument,
            G::DeadlineExceeded => Self::DeadlineExceeded,
            G::NotFound => Self::NotFound,
            G::AlreadyExists => Self::AlreadyExists,
            G::PermissionDenied => Self::PermissionDenied,
            G::ResourceExhausted => Self::ResourceExhausted,
            G::FailedPrecondition => Self::FailedPrecondition,
            G::Aborted => Self::Aborted,
            G::OutOfRange => Self::OutOfRange,
            G::Unimplemented => Self::Unimplemented,
            G::Internal => Self::Internal,
            G::Unavailable => Self::Unavailable,
            G::DataLoss => Self::DataLoss,
            G::Unauthenticated => Self::Unauthenticated,
        }
    }
}

impl std::fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong between the app and its Go backend.
///
/// Each message says what happened and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend answered with a gRPC error status.
    #[error("backend returned {code}: {message}")]
    Backend {
        /// The gRPC status code the backend (or the transport) reported.
        code: GrpcCode,
        /// The status message.
        message: String,
    },

    /// The backend could not be reached within the call's deadline, or the connection to it broke
    /// during the call (it exited or is being restarted).
    #[error("backend unavailable: {reason}; retry when the status is running")]
    Unavailable {
        /// Why it was unavailable (state of the supervisor, last error).
        reason: String,
    },

    /// The call's deadline passed before the backend answered.
    #[error("the backend did not answer within {}ms; it may be overloaded or hung (the supervisor restarts a hung backend)", .timeout.as_millis())]
    DeadlineExceeded {
        /// The deadline that passed.
        timeout: Duration,
    },

    /// The sidecar binary does not exist.
    #[error("sidecar binary not found at {}: build it (see README \"use it in your app\") or set plugins.anysync.sidecarPath", .path.display())]
    SidecarNotFound {
        /// Where the plugin looked.
        path: PathBuf,
    },

    /// The operating system refused to start the sidecar.
    #[error("cannot start sidecar {}: {source}; check that it is an executable built for this platform", .path.display())]
    SpawnFailed {
        /// The binary that failed to start.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The sidecar did not become ready in time: from spawn to its handshake line, a connection and
    /// a first SERVING health check, all within `handshakeTimeoutMs`.
    #[error("sidecar did not become ready (handshake, connection and first health check) within {}ms; it may be hung or not an anysync backend (raise plugins.anysync.handshakeTimeoutMs on slow machines){}", .timeout.as_millis(), stderr_suffix(.stderr_tail))]
    HandshakeTimeout {
        /// How long the plugin waited.
        timeout: Duration,
        /// The last lines the sidecar wrote to stderr, if any.
        stderr_tail: Vec<String>,
    },

    /// The sidecar's first stdout line was not a valid handshake.
    #[error("sidecar wrote an invalid handshake ({reason}); it is not an anysync backend or it writes to stdout, which is reserved for the handshake: {line:?}")]
    HandshakeInvalid {
        /// What was wrong with it.
        reason: String,
        /// The offending line, truncated.
        line: String,
    },

    /// The sidecar speaks another launch-protocol version.
    #[error("backend speaks launch protocol {found} but this plugin speaks {expected}: rebuild the sidecar from the same version as the plugin")]
    IncompatibleBackend {
        /// The protocol version this plugin speaks.
        expected: u32,
        /// The one the backend announced.
        found: u32,
    },

    /// The sidecar exited on its own: before its handshake, or later while it was serving.
    #[error("sidecar exited {} ({status}){}", if *.was_running { "unexpectedly while running" } else { "before it was ready" }, stderr_suffix(.stderr_tail))]
    SidecarExited {
        /// How it exited, e.g. `exit status: 2`.
        status: String,
        /// Whether it had completed its handshake and was serving.
        was_running: bool,
        /// The last lines the sidecar wrote to stderr, if any.
        stderr_tail: Vec<String>,
    },

    /// The backend is not running (stopping, stopped, or shutting down with the app).
    #[error("backend is {state}; call restart() to start it again")]
    NotRunning {
        /// The supervisor's state.
        state: State,
    },

    /// The supervisor gave up restarting the backend.
    #[error("backend failed after {restarts} restart(s) and is no longer restarted automatically: {cause}. Fix the cause, then call restart()")]
    SidecarFailed {
        /// Restarts attempted before giving up.
        restarts: u32,
        /// The last failure.
        cause: Box<ErrorInfo>,
    },

    /// A configuration value is invalid.
    #[error("invalid plugins.anysync configuration: {key}: {message}")]
    Config {
        /// The offending key, as written in tauri.conf.json.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// The front end called a method its capabilities do not grant (nothing was sent to the backend).
    #[error("{}", permission_denied_message(.method, .denied_by.as_deref()))]
    PermissionDenied {
        /// The method, `package.Service/Method`.
        method: String,
        /// The `deny` entry that matched, when one did (deny wins over allow).
        denied_by: Option<String>,
    },

    /// A request the plugin refused before sending it: a malformed method name, header or argument.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong and what is allowed.
        message: String,
    },

    /// The call or stream was cancelled by its caller (`cancel`, or its webview reloaded or closed).
    #[error("{what} was cancelled by the caller")]
    Cancelled {
        /// Which call, e.g. `call "c7" (example.v1.CounterService/Sleep)`.
        what: String,
    },

    /// A limit of the plugin was reached, e.g. the number of open streams.
    #[error("{message}")]
    ResourceExhausted {
        /// Which limit, and what to do.
        message: String,
    },

    /// An I/O error talking to the sidecar.
    #[error("I/O error talking to the sidecar: {0}")]
    Io(#[from] std::io::Error),
}

/// The permission a front end needs for `method`, as it goes into a capability file.
pub(crate) fn capability_entry(method: &str) -> String {
    format!(r#"{{ "identifier": "anysync:allow-call", "allow": [{{ "method": "{method}" }}] }}"#)
}

fn permission_denied_message(method: &str, denied_by: Option<&str>) -> String {
    match denied_by {
        Some(pattern) => format!(
            "the front end may not call {method}: the capability's deny entry {{ \"method\": \"{pattern}\" }} of anysync:allow-call forbids it (deny wins over allow); nothing was sent to the backend"
        ),
        None => format!(
            "the front end may not call {method}: add {} to the permissions of this window's capability (src-tauri/capabilities/*.json), or a glob such as \"{}/*\"; nothing was sent to the backend",
            capability_entry(method),
            method.split('/').next().unwrap_or(method)
        ),
    }
}

fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended with: {}", tail.join(" | "))
    }
}

impl Error {
    /// The code the front end sees: a gRPC code name or one of the plugin's own.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Backend { code, .. } => code.as_str(),
            Self::Unavailable { .. } => GrpcCode::Unavailable.as_str(),
            Self::DeadlineExceeded { .. } => GrpcCode::DeadlineExceeded.as_str(),
            Self::SidecarNotFound { .. } => "SIDECAR_NOT_FOUND",
            Self::SpawnFailed { .. } => "SPAWN_FAILED",
            Self::HandshakeTimeout { .. } => "HANDSHAKE_TIMEOUT",
            Self::HandshakeInvalid { .. } => "HANDSHAKE_INVALID",
            Self::IncompatibleBackend { .. } => "INCOMPATIBLE_BACKEND",
            Self::SidecarExited { .. } => "SIDECAR_EXITED",
            Self::NotRunning { .. } => "NOT_RUNNING",
            Self::SidecarFailed { .. } => "SIDECAR_FAILED",
            Self::Config { .. } => "CONFIG",
            Self::PermissionDenied { .. } => GrpcCode::PermissionDenied.as_str(),
            Self::InvalidArgument { .. } => GrpcCode::InvalidArgument.as_str(),
            Self::Cancelled { .. } => GrpcCode::Cancelled.as_str(),
            Self::ResourceExhausted { .. } => GrpcCode::ResourceExhausted.as_str(),
            Self::Io(_) => "IO",
        }
    }

    /// Structured context for the front end, where there is any.
    fn details(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            Self::SidecarNotFound { path } | Self::SpawnFailed { path, .. } => {
                Some(json!({ "path": path }))
            }
            Self::HandshakeTimeout { stderr_tail, .. }
            | Self::SidecarExited { stderr_tail, .. }
                if !stderr_tail.is_empty() =>
            {
                Some(json!({ "stderrTail": stderr_tail }))
            }
            Self::IncompatibleBackend { expected, found } => {
                Some(json!({ "expected": expected, "found": found }))
            }
            Self::SidecarFailed { restarts, cause } => {
                Some(json!({ "restarts": restarts, "cause": cause }))
            }
            Self::Config { key, .. } => Some(json!({ "key": key })),
            Self::NotRunning { state } => Some(json!({ "state": state })),
            Self::DeadlineExceeded { timeout } => Some(json!({ "timeoutMs": timeout.as_millis() })),
            Self::PermissionDenied { method, denied_by } => Some(json!({
                "method": method,
                "permission": "anysync:allow-call",
                "deniedBy": denied_by,
            })),
            _ => None,
        }
    }

    /// Whether retrying the same launch can succeed; the supervisor gives up at once otherwise.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::SidecarNotFound { .. }
                | Self::SpawnFailed { .. }
                | Self::IncompatibleBackend { .. }
                | Self::Config { .. }
        )
    }

    /// The serializable form that crosses to the front end.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code().to_owned(),
            message: self.to_string(),
            details: self.details(),
        }
    }
}

impl Error {
    /// The same error as a gRPC status, for Rust callers that talk tonic (the channel of
    /// [`Supervisor::channel`](crate::Supervisor::channel)). The plugin's own codes map to the gRPC
    /// code a generic client acts on: a backend that is not running is UNAVAILABLE, a failed one
    /// FAILED_PRECONDITION (restart it first).
    pub fn to_status(&self) -> tonic::Status {
        use tonic::Code as C;
        let code = match self {
            Self::Backend { code, .. } => (*code).into(),
            Self::Unavailable { .. } | Self::NotRunning { .. } | Self::SidecarExited { .. } => {
                C::Unavailable
            }
            Self::DeadlineExceeded { .. } => C::DeadlineExceeded,
            Self::PermissionDenied { .. } => C::PermissionDenied,
            Self::InvalidArgument { .. } => C::InvalidArgument,
            Self::Cancelled { .. } => C::Cancelled,
            Self::ResourceExhausted { .. } => C::ResourceExhausted,
            Self::SidecarFailed { .. } => C::FailedPrecondition,
            _ => C::Unavailable,
        };
        let message = match self {
            Self::Backend { message, .. } => message.clone(),
            other => other.to_string(),
        };
        tonic::Status::new(code, message)
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Self::Backend {
            code: status.code().into(),
            message: status.message().to_owned(),
        }
    }
}

/// An error as the front end receives it: `{ code, message, details? }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// A gRPC code name (`"UNAVAILABLE"`) or a plugin code (`"SIDECAR_NOT_FOUND"`).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// Structured context, e.g. `{ "path": ... }` or `{ "stderrTail": [...] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.info().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_keep_the_grpc_code_name() {
        let err: Error = tonic::Status::unauthenticated("missing token").into();
        let json = serde_json::to_value(&err).expect("serializes");
        assert_eq!(json["code"], "UNAUTHENTICATED");
        assert_eq!(
            json["message"],
            "backend returned UNAUTHENTICATED: missing token"
        );
        assert!(json.get("details").is_none());
    }

    #[test]
    fn every_tonic_code_maps_to_the_same_name() {
        for n in 0..=16 {
            let code = tonic::Code::from_i32(n);
            let ours = GrpcCode::from(code);
            let via_serde = serde_json::to_value(ours).expect("serializes");
            assert_eq!(
                via_serde,
                ours.as_str(),
                "serde and as_str agree for {code:?}"
            );
            assert_eq!(
                ours.as_str().replace('_', "").to_lowercase(),
                format!("{code:?}").to_lowercase()
            );
        }
    }

    #[test]
    fn plugin_errors_carry_their_own_code_and_details() {
        let err = Error::SidecarNotFound {
            path: "/nope/anysync-backend".into(),
        };
        let json = serde_json::to_value(&err).expect("serializes");
        assert_eq!(json["code"], "SIDECAR_NOT_FOUND");
        assert_eq!(json["details"]["path"], "/nope/anysync-backend");
        assert!(json["message"]
            .as_str()
            .is_some_and(|m| m.contains("sidecarPath")));
    }
}
