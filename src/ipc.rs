//! The front end's side of the generic path (docs/call-path.md, "IPC commands"): reading the raw
//! body and the `anysync-*` headers, checking the method scope, and the `Channel` a stream's frames
//! go to. Everything here happens before anything is sent to the backend.

use std::str::FromStr as _;
use std::time::Duration;

use bytes::Bytes;
use tauri::ipc::{
    Channel, CommandScope, GlobalScope, InvokeBody, InvokeResponseBody, JavaScriptChannelId,
    Request,
};
use tauri::{Runtime, Webview};

use crate::calls::{parse_call_id, Owner};
use crate::error::{Error, Result};
use crate::method::Method;
use crate::scope::{authorize, MethodScope};
use crate::stream::{check_credit, check_credit_bytes, FrameSink};

/// The method, `package.Service/Method` (required).
pub const METHOD_HEADER: &str = "anysync-method";
/// The call's id within its webview, for `cancel` (optional for `call`, required for `stream`).
pub const CALL_ID_HEADER: &str = "anysync-call-id";
/// The deadline in milliseconds (optional).
pub const TIMEOUT_HEADER: &str = "anysync-timeout-ms";
/// The stream's `Channel` id, `__CHANNEL__:N` (`stream` only, required).
pub const CHANNEL_HEADER: &str = "anysync-channel";
/// The stream's initial credit, 1..=1024 (`stream` only, required).
pub const CREDIT_HEADER: &str = "anysync-credit";
/// The stream's initial byte credit, 1..=1 GiB (`stream` only, optional: without it only messages
/// are counted).
pub const CREDIT_BYTES_HEADER: &str = "anysync-credit-bytes";

/// A `call` or `stream` as the front end asked for it, checked.
pub(crate) struct Invocation {
    pub(crate) method: Method,
    pub(crate) id: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) body: Bytes,
}

/// A `stream`'s extras.
pub(crate) struct StreamInvocation {
    pub(crate) call: Invocation,
    pub(crate) id: String,
    pub(crate) credit: u32,
    pub(crate) credit_bytes: Option<u32>,
    pub(crate) channel: JavaScriptChannelId,
}

/// Who is calling.
pub(crate) fn owner<R: Runtime>(webview: &Webview<R>) -> Owner {
    Owner {
        webview: webview.label().to_owned(),
        window: webview.window().label().to_owned(),
    }
}

/// Reads and checks a `call` (also the common part of a `stream`): the method first, then its
/// scope, so that a denied method is refused whatever else is wrong with the request.
pub(crate) fn invocation(
    request: &Request<'_>,
    command_scope: &CommandScope<MethodScope>,
    global_scope: &GlobalScope<MethodScope>,
) -> Result<Invocation> {
    let method = Method::parse(&required(request, METHOD_HEADER)?)?;
    authorize(
        method.name(),
        command_scope
            .allows()
            .iter()
            .chain(global_scope.allows())
            .map(AsRef::as_ref),
        command_scope
            .denies()
            .iter()
            .chain(global_scope.denies())
            .map(AsRef::as_ref),
    )?;
    let id = optional(request, CALL_ID_HEADER)?
        .map(|id| parse_call_id(&id))
        .transpose()?;
    let timeout = optional(request, TIMEOUT_HEADER)?
        .map(|ms| parse_timeout(&ms))
        .transpose()?;
    let body = match request.body() {
        // One copy: tonic needs owned bytes, the request is borrowed.
        InvokeBody::Raw(bytes) => Bytes::copy_from_slice(bytes),
        // `invoke(cmd, new Uint8Array(0))` may arrive as no body at all.
        InvokeBody::Json(serde_json::Value::Null) => Bytes::new(),
        InvokeBody::Json(_) => {
            return Err(Error::InvalidArgument {
                message: format!(
                    "the payload of {method} must be the request message's protobuf bytes as a Uint8Array, not JSON"
                ),
            })
        }
    };
    Ok(Invocation {
        method,
        id,
        timeout,
        body,
    })
}

/// Reads and checks a `stream`.
pub(crate) fn stream_invocation(
    request: &Request<'_>,
    command_scope: &CommandScope<MethodScope>,
    global_scope: &GlobalScope<MethodScope>,
) -> Result<StreamInvocation> {
    let call = invocation(request, command_scope, global_scope)?;
    let id = call.id.clone().ok_or_else(|| missing(CALL_ID_HEADER))?;
    let credit = required(request, CREDIT_HEADER)?;
    let credit = credit
        .parse::<u32>()
        .map_err(|_| Error::InvalidArgument {
            message: format!("{CREDIT_HEADER} {credit:?} is not a number of messages (1 to 1024)"),
        })
        .and_then(check_credit)?;
    let credit_bytes = optional(request, CREDIT_BYTES_HEADER)?
        .map(|bytes| {
            bytes
                .parse::<u32>()
                .map_err(|_| Error::InvalidArgument {
                    message: format!(
                        "{CREDIT_BYTES_HEADER} {bytes:?} is not a number of bytes (1 to 1073741824)"
                    ),
                })
                .and_then(check_credit_bytes)
        })
        .transpose()?;
    let channel = required(request, CHANNEL_HEADER)?;
    let channel = JavaScriptChannelId::from_str(&channel).map_err(|e| Error::InvalidArgument {
        message: format!(
            "{CHANNEL_HEADER} {channel:?} is not a Channel id ({e}): pass `new Channel().toJSON()`"
        ),
    })?;
    Ok(StreamInvocation {
        call,
        id,
        credit,
        credit_bytes,
        channel,
    })
}

fn parse_timeout(ms: &str) -> Result<Duration> {
    match ms.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::InvalidArgument {
            message: format!("{TIMEOUT_HEADER} {ms:?} is not a positive number of milliseconds"),
        }),
    }
}

fn missing(name: &str) -> Error {
    Error::InvalidArgument {
        message: format!("the {name} header is required"),
    }
}

fn required(request: &Request<'_>, name: &str) -> Result<String> {
    optional(request, name)?.ok_or_else(|| missing(name))
}

fn optional(request: &Request<'_>, name: &str) -> Result<Option<String>> {
    request
        .headers()
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| Error::InvalidArgument {
                    message: format!("the {name} header is not visible ASCII"),
                })
        })
        .transpose()
}

/// A stream's frames, sent on the front end's `Channel` as raw bytes (an `ArrayBuffer` there).
pub(crate) struct ChannelSink(pub(crate) Channel<InvokeResponseBody>);

impl FrameSink for ChannelSink {
    fn deliver(&self, payload: Vec<u8>) -> bool {
        match self.0.send(InvokeResponseBody::Raw(payload)) {
            Ok(()) => true,
            Err(error) => {
                log::debug!("anysync: stream channel {} is gone: {error}", self.0.id());
                false
            }
        }
    }
}
