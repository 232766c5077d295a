//! The plugin's configuration: `plugins.anysync` in tauri.conf.json, overridden by the Rust
//! [`Builder`](crate::Builder), validated once at setup into a [`SupervisorConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::sidecar::Token;

/// The sidecar's file name as Tauri's `bundle.externalBin` places it beside the app executable.
pub const SIDECAR_NAME: &str = "anysync-backend";

/// Every option, as written in `plugins.anysync` of tauri.conf.json. Unset options take defaults.
///
/// ```json
/// { "plugins": { "anysync": { "healthCheckIntervalMs": 2000, "logLevel": "debug" } } }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Path of the sidecar binary. Default: `<sidecarName>` (plus `.exe` on Windows) beside the app
    /// executable.
    pub sidecar_path: Option<PathBuf>,
    /// The sidecar's base name, as `bundle.externalBin` and the build helper's `Builder::name()`
    /// give it (an app of its own names its sidecar after itself, so that two apps on this plugin
    /// never collide in `/usr/bin`). A file name, no directories. Default `anysync-backend`.
    /// Ignored when `sidecarPath` is set.
    pub sidecar_name: Option<String>,
    /// Extra arguments for the sidecar (e.g. `["--config", "/path/backend.json"]`). Never secrets.
    pub args: Option<Vec<String>>,
    /// Where the backend keeps its data (the document store's spaces), an absolute path, handed
    /// to it as `ANYSYNC_DATA_DIR`. Default: `anysync` in the app's data directory
    /// (`app_data_dir()`).
    pub data_dir: Option<PathBuf>,
    /// Extra environment variables for the sidecar (e.g. `ANYSYNC_MAX_MESSAGE_BYTES`). Never secrets.
    pub env: Option<BTreeMap<String, String>>,
    /// The sidecar's log level: `debug`, `info`, `warn` or `error`. Default `info`.
    pub log_level: Option<String>,
    /// How long a start may take, from spawn to a connected client. Default 10000.
    pub handshake_timeout_ms: Option<u64>,
    /// Interval between health checks of a running backend. Default 5000.
    pub health_check_interval_ms: Option<u64>,
    /// Deadline of one health check. Default 1000.
    pub health_check_timeout_ms: Option<u64>,
    /// Failed health checks in a row that make the backend unhealthy (and restarted). Default 3.
    pub unhealthy_threshold: Option<u32>,
    /// Restarts allowed within `restartWindowMs` before the supervisor gives up. Default 5.
    pub max_restarts: Option<u32>,
    /// The window over which restarts are counted. Default 60000.
    pub restart_window_ms: Option<u64>,
    /// Delay before the second restart in a row (the first is immediate); doubles per restart. Default 100.
    pub backoff_initial_ms: Option<u64>,
    /// Upper bound of the restart delay. Default 5000.
    pub backoff_max_ms: Option<u64>,
    /// How long a graceful stop may take before the sidecar is killed. Default 3000. The backend
    /// gets a shutdown grace below it (`ANYSYNC_SHUTDOWN_GRACE`: this less a quarter, at least
    /// 500 ms of margin where it allows), so a stop ends with its own clean exit, not a kill.
    pub shutdown_timeout_ms: Option<u64>,
    /// Deadline of every call, including the wait for a restarting backend. Default 10000.
    pub call_timeout_ms: Option<u64>,
    /// How many backend log records `logs()` keeps. Default 1000. The ring also never holds more
    /// than 4 MiB of log text, whatever the count.
    pub log_buffer: Option<usize>,
}

impl Config {
    /// `self` with every option that `overrides` sets replaced.
    pub(crate) fn merged_with(self, overrides: Config) -> Config {
        macro_rules! pick {
            ($($field:ident),*) => { Config { $($field: overrides.$field.or(self.$field)),* } };
        }
        pick!(
            sidecar_path,
            sidecar_name,
            args,
            data_dir,
            env,
            log_level,
            handshake_timeout_ms,
            health_check_interval_ms,
            health_check_timeout_ms,
            unhealthy_threshold,
            max_restarts,
            restart_window_ms,
            backoff_initial_ms,
            backoff_max_ms,
            shutdown_timeout_ms,
            call_timeout_ms,
            log_buffer
        )
    }

    /// Validates every option and fills in defaults. Errors name the key and the allowed values.
    pub fn resolve(self) -> Result<SupervisorConfig> {
        let ms =
            |key: &str, value: Option<u64>, default: u64, min: u64, max: u64| -> Result<Duration> {
                let value = value.unwrap_or(default);
                if (min..=max).contains(&value) {
                    Ok(Duration::from_millis(value))
                } else {
                    Err(config_error(
                        key,
                        format!("{value} is out of range; allowed {min}..={max} (milliseconds)"),
                    ))
                }
            };
        let count =
            |key: &str, value: Option<u32>, default: u32, min: u32, max: u32| -> Result<u32> {
                let value = value.unwrap_or(default);
                if (min..=max).contains(&value) {
                    Ok(value)
                } else {
                    Err(config_error(
                        key,
                        format!("{value} is out of range; allowed {min}..={max}"),
                    ))
                }
            };

        let sidecar_name = match self.sidecar_name {
            None => SIDECAR_NAME.to_owned(),
            Some(name) => check_sidecar_name(name)?,
        };
        let sidecar_path = match self.sidecar_path {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(config_error(
                    "sidecarPath",
                    "is empty; give a path or leave it out".into(),
                ))
            }
            Some(path) => path,
            None => default_sidecar_path(&sidecar_name)?,
        };
        let log_level = match self.log_level.as_deref() {
            None => BackendLogLevel::Info,
            Some(name) => BackendLogLevel::parse(name).ok_or_else(|| {
                config_error(
                    "logLevel",
                    format!(
                        "{name:?} is not a level; allowed \"debug\", \"info\", \"warn\", \"error\""
                    ),
                )
            })?,
        };
        let env = self.env.unwrap_or_default();
        if let Some(bad) = env.keys().find(|k| k.is_empty() || k.contains(['=', '\0'])) {
            return Err(config_error(
                "env",
                format!("{bad:?} is not a valid variable name"),
            ));
        }
        if let Some(bad) = env.values().find(|v| v.contains('\0')) {
            return Err(config_error(
                "env",
                format!("value {bad:?} contains a NUL byte"),
            ));
        }
        let data_dir = match self.data_dir {
            Some(dir) if !dir.is_absolute() => {
                return Err(config_error(
                    "dataDir",
                    format!("{} is not an absolute path", dir.display()),
                ))
            }
            dir => dir,
        };
        let args = self.args.unwrap_or_default();
        if args.iter().any(|a| a.contains('\0')) {
            return Err(config_error(
                "args",
                "an argument contains a NUL byte".into(),
            ));
        }
        let backoff_initial = ms("backoffInitialMs", self.backoff_initial_ms, 100, 0, 60_000)?;
        let backoff_max = ms("backoffMaxMs", self.backoff_max_ms, 5_000, 0, 600_000)?;
        if backoff_max < backoff_initial {
            return Err(config_error(
                "backoffMaxMs",
                "must be at least backoffInitialMs".into(),
            ));
        }
        let log_buffer = self.log_buffer.unwrap_or(1000);
        if !(1..=100_000).contains(&log_buffer) {
            return Err(config_error(
                "logBuffer",
                format!("{log_buffer} is out of range; allowed 1..=100000"),
            ));
        }
        Ok(SupervisorConfig {
            sidecar_path,
            args,
            data_dir,
            env,
            log_level,
            handshake_timeout: ms(
                "handshakeTimeoutMs",
                self.handshake_timeout_ms,
                10_000,
                100,
                600_000,
            )?,
            health_check_interval: ms(
                "healthCheckIntervalMs",
                self.health_check_interval_ms,
                5_000,
                50,
                3_600_000,
            )?,
            health_check_timeout: ms(
                "healthCheckTimeoutMs",
                self.health_check_timeout_ms,
                1_000,
                10,
                60_000,
            )?,
            unhealthy_threshold: count("unhealthyThreshold", self.unhealthy_threshold, 3, 1, 100)?,
            max_restarts: count("maxRestarts", self.max_restarts, 5, 0, 10_000)?,
            restart_window: ms(
                "restartWindowMs",
                self.restart_window_ms,
                60_000,
                1_000,
                86_400_000,
            )?,
            backoff_initial,
            backoff_max,
            shutdown_timeout: ms(
                "shutdownTimeoutMs",
                self.shutdown_timeout_ms,
                3_000,
                10,
                60_000,
            )?,
            call_timeout: ms("callTimeoutMs", self.call_timeout_ms, 10_000, 1, 600_000)?,
            log_buffer,
            token: Token::generate()?,
        })
    }
}

fn config_error(key: &str, message: String) -> Error {
    Error::Config {
        key: key.to_owned(),
        message,
    }
}

/// A `sidecarName` is a bare file name: not empty, no path separator, not `.`/`..`, no NUL, and
/// without the `.exe` Windows adds (the base name, as `bundle.externalBin` names it).
fn check_sidecar_name(name: String) -> Result<String> {
    let problem = if name.is_empty() {
        Some("is empty; give the sidecar's base name (e.g. \"my-app-backend\") or leave it out")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator; give a base name only, or set sidecarPath for a path")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.to_ascii_lowercase().ends_with(".exe") {
        Some("ends with .exe; give the base name, the suffix is added on Windows")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(config_error("sidecarName", format!("{name:?} {problem}"))),
        None => Ok(name),
    }
}

/// Where Tauri puts `bundle.externalBin` sidecars, in dev and in bundles: beside the executable.
fn default_sidecar_path(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| {
        config_error(
            "sidecarPath",
            format!("cannot locate the app executable ({e}); set it explicitly"),
        )
    })?;
    let dir = exe
        .parent()
        .ok_or_else(|| config_error("sidecarPath", "the app executable has no directory".into()))?;
    Ok(dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// The log levels the Go backend understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendLogLevel {
    /// One record per call, and more.
    Debug,
    /// Start-up, shutdown and notable events.
    Info,
    /// Problems the backend survived.
    Warn,
    /// Failures only.
    Error,
}

impl BackendLogLevel {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    /// The name passed to the backend in `ANYSYNC_LOG_LEVEL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// A validated configuration with every default filled in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SupervisorConfig {
    /// The sidecar binary.
    pub sidecar_path: PathBuf,
    /// Extra sidecar arguments.
    pub args: Vec<String>,
    /// The backend's data directory (`ANYSYNC_DATA_DIR`); `None`: the backend has none, and its
    /// document store answers FAILED_PRECONDITION.
    pub data_dir: Option<PathBuf>,
    /// Extra sidecar environment.
    pub env: BTreeMap<String, String>,
    /// The sidecar's log level.
    pub log_level: BackendLogLevel,
    /// Spawn-to-connected deadline.
    pub handshake_timeout: Duration,
    /// Interval between health checks.
    pub health_check_interval: Duration,
    /// Deadline of one health check.
    pub health_check_timeout: Duration,
    /// Failed checks in a row that make the backend unhealthy.
    pub unhealthy_threshold: u32,
    /// Restarts allowed within `restart_window`.
    pub max_restarts: u32,
    /// The window restarts are counted over.
    pub restart_window: Duration,
    /// Delay before the second consecutive restart.
    pub backoff_initial: Duration,
    /// Upper bound of the restart delay.
    pub backoff_max: Duration,
    /// Graceful stop bound.
    pub shutdown_timeout: Duration,
    /// Deadline of every call.
    pub call_timeout: Duration,
    /// Backend log records kept.
    pub log_buffer: usize,
    /// The secret of the first incarnation of a supervisor started with this configuration.
    pub(crate) token: Token,
}

impl SupervisorConfig {
    /// The secret the *first* sidecar incarnation of a supervisor started with this configuration
    /// gets on stdin (and every call to it carries). Each later incarnation (every restart) draws a
    /// fresh one, so a token is worthless once its backend is gone; the current one is
    /// [`Supervisor::token`](crate::Supervisor::token). It never leaves the process except on the
    /// sidecar's stdin and in call metadata.
    pub fn token(&self) -> &Token {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> std::result::Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_are_sane() {
        let config = Config::default().resolve().expect("defaults are valid");
        assert_eq!(config.call_timeout, Duration::from_secs(10));
        assert_eq!(config.unhealthy_threshold, 3);
        assert!(config
            .sidecar_path
            .ends_with(format!("{SIDECAR_NAME}{}", std::env::consts::EXE_SUFFIX)));
    }

    #[test]
    fn sidecar_name_names_the_default_path_beside_the_executable() {
        let config = parse(r#"{"sidecarName": "my-app-backend"}"#)
            .expect("parses")
            .resolve()
            .expect("valid");
        let exe = std::env::current_exe().expect("exe");
        assert_eq!(
            config.sidecar_path,
            exe.parent()
                .expect("dir")
                .join(format!("my-app-backend{}", std::env::consts::EXE_SUFFIX))
        );
        // An explicit path wins over the name.
        let config = parse(r#"{"sidecarName": "my-app-backend", "sidecarPath": "/opt/x/backend"}"#)
            .expect("parses")
            .resolve()
            .expect("valid");
        assert_eq!(config.sidecar_path, PathBuf::from("/opt/x/backend"));
        // The Builder's name overrides the file's.
        let merged = parse(r#"{"sidecarName": "from-file"}"#)
            .expect("parses")
            .merged_with(Config {
                sidecar_name: Some("from-builder".into()),
                ..Config::default()
            });
        assert_eq!(merged.sidecar_name.as_deref(), Some("from-builder"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err =
            parse(r#"{"healthCheckIntervalMs": 10, "helthCheck": 1}"#).expect_err("unknown key");
        assert!(err.to_string().contains("helthCheck"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key_and_range() {
        for (json, key) in [
            (r#"{"healthCheckIntervalMs": 0}"#, "healthCheckIntervalMs"),
            (r#"{"logLevel": "verbose"}"#, "logLevel"),
            (
                r#"{"backoffInitialMs": 500, "backoffMaxMs": 100}"#,
                "backoffMaxMs",
            ),
            (r#"{"env": {"A=B": "x"}}"#, "env"),
            (r#"{"sidecarPath": ""}"#, "sidecarPath"),
            (r#"{"logBuffer": 0}"#, "logBuffer"),
            (r#"{"sidecarName": ""}"#, "sidecarName"),
            (r#"{"sidecarName": "bin/backend"}"#, "sidecarName"),
            (r#"{"sidecarName": "..\\backend"}"#, "sidecarName"),
            (r#"{"sidecarName": ".."}"#, "sidecarName"),
            (r#"{"sidecarName": "backend.exe"}"#, "sidecarName"),
        ] {
            let err = parse(json).expect("parses").resolve().expect_err(json);
            assert_eq!(err.code(), "CONFIG");
            assert!(err.to_string().contains(key), "{json}: {err}");
        }
        let err = parse(r#"{"maxRestarts": -1}"#).expect_err("negative");
        assert!(err.to_string().contains("invalid value"), "{err}");
    }

    #[test]
    fn builder_options_override_the_file() {
        let file = parse(r#"{"callTimeoutMs": 100, "maxRestarts": 2}"#).expect("parses");
        let builder = Config {
            call_timeout_ms: Some(200),
            ..Config::default()
        };
        let merged = file.merged_with(builder);
        assert_eq!(
            (merged.call_timeout_ms, merged.max_restarts),
            (Some(200), Some(2))
        );
    }
}
