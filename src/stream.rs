//! The server-streaming path (docs/call-path.md, `stream`): one task per stream moves messages from
//! the gRPC stream to a [`FrameSink`] (the front end's `Channel`) as credit allows.
//!
//! # Bounds
//! - **Towards the front end**: a message is taken from tonic's `Streaming` only while the stream
//!   holds credit, and each one spends one credit, so at most `credit` messages are ever in flight
//!   towards the consumer. A consumer that also grants byte credit (`anysync-credit-bytes`) bounds
//!   the bytes in flight too: a message is taken only while byte credit is left, so they stay below
//!   the byte credit plus one message.
//! - **In Rust**: nothing beyond those. The message being framed is already paid for and is sent at
//!   once (several ready ones share one payload, at most [`MAX_BATCH_BYTES`] plus one message). What
//!   the backend sent but Rust has not taken yet sits in HTTP/2's receive buffer, bounded by the
//!   stream's window ([`STREAM_WINDOW_BYTES`](crate::client::STREAM_WINDOW_BYTES)).
//! - **In Go**: once that window is full, HTTP/2 flow control blocks the handler's `Send`; a
//!   consumer that stops granting credit costs one window per stream, forever, and nothing is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tonic::codec::Streaming;
use tonic::codegen::tokio_stream::Stream;

use crate::calls::{CancelReason, Control, Registration, Signal};
use crate::client::{classify, Client, StreamSlot};
use crate::error::{Error, ErrorInfo, Result};
use crate::method::Method;
use crate::supervisor::{incarnation_ended, Snapshots};

/// Frame kind of one response message.
pub const FRAME_MESSAGE: u8 = 0;
/// Frame kind of the end of the stream (empty body: OK; else the JSON error).
pub const FRAME_END: u8 = 1;
/// Largest credit one grant may add, and the largest initial credit.
pub const MAX_CREDIT: u32 = 1024;
/// Largest byte credit one grant may add, and the largest initial byte credit. Grants give back
/// what was consumed, which may exceed the window by one message, so this is far above any window.
pub const MAX_CREDIT_BYTES: u32 = 1 << 30;
/// Ready messages are packed into one payload up to about this size.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Where a stream's payloads go: one or more frames each, in order.
pub trait FrameSink: Send + Sync + 'static {
    /// Delivers one payload; `false` when the receiver is gone, which ends the stream (the gRPC
    /// call is reset) without a further delivery.
    fn deliver(&self, payload: Vec<u8>) -> bool;
}

/// One frame of a payload, as [`parse_frames`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// A response message's protobuf bytes.
    Message(&'a [u8]),
    /// The end of the stream: `None` for OK, else the error.
    End(Option<ErrorInfo>),
}

/// Reads the frames of one payload (the inverse of what the stream path sends); for Rust
/// consumers of [`FrameSink`] and for tests.
pub fn parse_frames(mut payload: &[u8]) -> std::result::Result<Vec<Frame<'_>>, String> {
    let mut frames = Vec::new();
    while !payload.is_empty() {
        if payload.len() < 5 {
            return Err(format!("truncated frame header ({} bytes)", payload.len()));
        }
        let kind = payload[0];
        let len = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]) as usize;
        let body = payload
            .get(5..5 + len)
            .ok_or_else(|| format!("frame of {len} bytes is truncated"))?;
        frames.push(match kind {
            FRAME_MESSAGE => Frame::Message(body),
            FRAME_END if body.is_empty() => Frame::End(None),
            FRAME_END => Frame::End(Some(
                serde_json::from_slice(body).map_err(|e| format!("bad end frame: {e}"))?,
            )),
            other => return Err(format!("unknown frame kind {other}")),
        });
        payload = &payload[5 + len..];
    }
    Ok(frames)
}

fn push_frame(buf: &mut Vec<u8>, kind: u8, body: &[u8]) {
    // Messages are bounded by MAX_RESPONSE_BYTES (64 MiB), far below u32::MAX.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    buf.reserve(5 + body.len());
    buf.push(kind);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(body);
}

/// The options of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Bounds the whole stream (DEADLINE_EXCEEDED after it); `None`: no deadline.
    pub timeout: Option<Duration>,
    /// Messages the consumer can take before it grants more, 1..=[`MAX_CREDIT`].
    pub credit: u32,
}

/// Checks a credit amount (initial or granted).
pub(crate) fn check_credit(n: u32) -> Result<u32> {
    if (1..=MAX_CREDIT).contains(&n) {
        Ok(n)
    } else {
        Err(Error::InvalidArgument {
            message: format!(
                "credit {n} is out of range: grant 1 to {MAX_CREDIT} messages at a time"
            ),
        })
    }
}

/// Checks a byte credit amount (initial or granted).
pub(crate) fn check_credit_bytes(bytes: u32) -> Result<u32> {
    if (1..=MAX_CREDIT_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(Error::InvalidArgument {
            message: format!(
                "byte credit {bytes} is out of range: grant 1 to {MAX_CREDIT_BYTES} bytes at a time"
            ),
        })
    }
}

/// A Rust caller's hold on a stream opened with
/// [`Supervisor::open_stream`](crate::Supervisor::open_stream). Dropping it does not end the
/// stream; [`Self::cancel`] does.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    control: Arc<Control>,
}

impl StreamHandle {
    pub(crate) fn new(control: Arc<Control>) -> Self {
        Self { control }
    }

    /// Lets the stream deliver `n` (1..=1024) more messages.
    pub fn add_credit(&self, n: u32) -> Result<()> {
        self.control.add_credit(check_credit(n)?, None);
        Ok(())
    }

    /// Cancels the stream: the gRPC call is reset and the sink gets a CANCELLED end frame.
    pub fn cancel(&self) {
        self.control.cancel(CancelReason::Caller);
    }
}

/// Everything one stream task needs.
pub(crate) struct Pump {
    pub(crate) client: Client,
    pub(crate) slot: StreamSlot,
    pub(crate) snapshots: Snapshots,
    pub(crate) method: Method,
    pub(crate) body: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) control: Arc<Control>,
    pub(crate) sink: Arc<dyn FrameSink>,
    /// The front end's registry entry, removed when the stream ends.
    pub(crate) registration: Option<Registration>,
}

/// How a stream ended.
enum Outcome {
    /// Tell the consumer: OK or the error.
    End(Result<()>),
    /// There is no consumer left (its webview went away or the sink refused a delivery).
    Silent,
}

impl Pump {
    /// Runs the stream to its end and sends the end frame (with any messages still batched).
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::new();
        let outcome = self.forward(&mut batch).await;
        let method = self.method.clone();
        match outcome {
            Outcome::End(result) => {
                let body = match &result {
                    Ok(()) => Vec::new(),
                    Err(error) => serde_json::to_vec(&error.info()).unwrap_or_default(),
                };
                match &result {
                    Ok(()) => log::debug!("anysync: stream {method} ended"),
                    Err(error) => log::debug!("anysync: stream {method} ended: {error}"),
                }
                push_frame(&mut batch, FRAME_END, &body);
                self.sink.deliver(batch);
            }
            Outcome::Silent => {
                log::debug!("anysync: stream {method} dropped, its consumer is gone")
            }
        }
        // Dropping the tonic stream (in `forward`) reset the call; now the registry entry goes.
        drop(self.registration.take());
    }

    fn cancelled(&self, reason: CancelReason) -> Outcome {
        match reason {
            CancelReason::Caller => Outcome::End(Err(Error::Cancelled {
                what: format!("stream {}", self.method),
            })),
            CancelReason::OwnerGone => Outcome::Silent,
        }
    }

    fn incarnation_gone() -> Outcome {
        Outcome::End(Err(Error::Unavailable {
            reason: "the backend this stream was opened on stopped (it exited or is restarting); open the stream again once the status is running".into(),
        }))
    }

    fn deadline_passed(&self) -> Outcome {
        Outcome::End(Err(Error::DeadlineExceeded {
            timeout: self.timeout.unwrap_or_default(),
        }))
    }

    fn failed(&self, status: tonic::Status) -> Outcome {
        Outcome::End(Err(classify(status, self.timeout.unwrap_or_default())))
    }

    async fn forward(&mut self, batch: &mut Vec<u8>) -> Outcome {
        let incarnation = self.client.incarnation();
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let expired = async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let control = Arc::clone(&self.control);
        let mut snapshots = self.snapshots.clone();

        let opened = {
            let open = self.client.server_streaming(
                &self.slot,
                &self.method,
                self.body.clone(),
                self.timeout,
            );
            tokio::select! {
                biased;
                signal = control.wait(false) => Err(signal),
                () = incarnation_ended(&mut snapshots, incarnation) => return Self::incarnation_gone(),
                () = &mut expired => return self.deadline_passed(),
                opened = open => Ok(opened),
            }
        };
        let mut stream = match opened {
            Err(Signal::Cancelled(reason)) => return self.cancelled(reason),
            Err(Signal::Credit) => return unreachable_signal(),
            Ok(Err(status)) => return self.failed(status),
            Ok(Ok(stream)) => stream,
        };

        loop {
            // Take nothing from the stream without credit: this is what pushes back to Go.
            tokio::select! {
                biased;
                signal = control.wait(true) => match signal {
                    Signal::Cancelled(reason) => return self.cancelled(reason),
                    Signal::Credit => {}
                },
                () = incarnation_ended(&mut snapshots, incarnation) => return Self::incarnation_gone(),
                () = &mut expired => return self.deadline_passed(),
            }
            let next = tokio::select! {
                biased;
                signal = control.wait(false) => match signal {
                    Signal::Cancelled(reason) => return self.cancelled(reason),
                    Signal::Credit => continue,
                },
                () = incarnation_ended(&mut snapshots, incarnation) => return Self::incarnation_gone(),
                () = &mut expired => return self.deadline_passed(),
                next = stream.message() => next,
            };
            match next {
                Ok(Some(message)) => {
                    control.spend(message.len());
                    push_frame(batch, FRAME_MESSAGE, &message);
                }
                Ok(None) => return Outcome::End(Ok(())),
                Err(status) => return self.failed(status),
            }
            // Pack what else is ready (and paid for) into the same payload.
            while batch.len() < MAX_BATCH_BYTES && control.has_credit() {
                match poll_ready_message(&mut stream) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(Some(message))) => {
                        control.spend(message.len());
                        push_frame(batch, FRAME_MESSAGE, &message);
                    }
                    Poll::Ready(Ok(None)) => return Outcome::End(Ok(())),
                    Poll::Ready(Err(status)) => return self.failed(status),
                }
            }
            if !self.sink.deliver(std::mem::take(batch)) {
                return Outcome::Silent;
            }
        }
    }
}

/// `Control::wait(false)` only resolves on cancellation.
fn unreachable_signal() -> Outcome {
    Outcome::End(Err(Error::Io(std::io::Error::other(
        "stream control signalled credit where only cancellation was awaited",
    ))))
}

/// The next message if one is ready now, without waiting. Polled with a no-op waker: on
/// `Pending` the next `message().await` polls again with the task's real waker.
fn poll_ready_message(
    stream: &mut Streaming<Bytes>,
) -> Poll<std::result::Result<Option<Bytes>, tonic::Status>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(stream).poll_next(&mut cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Some(Ok(message))) => Poll::Ready(Ok(Some(message))),
        Poll::Ready(Some(Err(status))) => Poll::Ready(Err(status)),
        Poll::Ready(None) => Poll::Ready(Ok(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        push_frame(&mut buf, FRAME_MESSAGE, b"abc");
        push_frame(&mut buf, FRAME_MESSAGE, b"");
        let error = Error::Cancelled {
            what: "stream x".into(),
        };
        push_frame(
            &mut buf,
            FRAME_END,
            &serde_json::to_vec(&error.info()).expect("json"),
        );
        assert_eq!(&buf[..8], &[0, 3, 0, 0, 0, b'a', b'b', b'c']);
        let frames = parse_frames(&buf).expect("parses");
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], Frame::Message(b"abc"));
        assert_eq!(frames[1], Frame::Message(b""));
        match &frames[2] {
            Frame::End(Some(info)) => assert_eq!(info.code, "CANCELLED"),
            other => panic!("{other:?}"),
        }
        assert!(parse_frames(&buf[..buf.len() - 1]).is_err());
        assert_eq!(
            parse_frames(&[1, 0, 0, 0, 0]).expect("ok end"),
            [Frame::End(None)]
        );
    }

    #[test]
    fn credit_bounds() {
        assert!(check_credit(0).is_err());
        assert!(check_credit(1).is_ok());
        assert!(check_credit(MAX_CREDIT).is_ok());
        assert!(check_credit(MAX_CREDIT + 1).is_err());
    }
}
